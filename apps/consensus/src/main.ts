console.log('consensus');
